/*  garbagetruck.h — umbrella header of libgarbagetruck (codec + C SDK).  */
#ifndef GARBAGETRUCK_H_INCLUDED
#define GARBAGETRUCK_H_INCLUDED

#include <czmq.h>
#include "gt_proto.h"
#include "gt_msg.h"
#include "gt_client.h"
#include "gt_subscriber.h"
#include "gt_keepalive.h"
#include "gt_webhook.h"

#endif
