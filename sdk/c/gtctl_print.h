/*  gtctl_print.h — gtctl's output: human text and the codec's JSON mirror.  */
#ifndef GTCTL_PRINT_H_INCLUDED
#define GTCTL_PRINT_H_INCLUDED

#include "garbagetruck.h"

//  Print json on stdout (indented, or one compact line) and flush; takes
//  ownership of json.
void gtctl_print_json (json_t *json, bool compact);

//  The event map (gt_event_to_json) plus its "topic".
json_t *gtctl_event_json (const gt_event_t *event);

//  "SERVING (memory, OK) version 0.1.0 uptime 12s leases 3"
void gtctl_print_health (const gt_msg_t *reply);

//  One "name  value" line per counter.
void gtctl_print_stats (const gt_msg_t *reply);

//  "<id> ACTIVE expires in 29.9s renewals 1" (or "<id> RELEASED").
void gtctl_print_lease_line (const gt_lease_info_t *lease);

//  Every field of a lease, one per line.
void gtctl_print_lease (const gt_lease_info_t *lease);

//  A table of leases (one page, or several).
void gtctl_print_leases (const gt_lease_info_t *const *leases, size_t count);

//  A table of the page of leases (gtctl says the next page's command).
void gtctl_print_list (const gt_msg_t *reply);

//  ms as seconds, without trailing zeros: "0.5", "1", "3600", "0.05".
void gtctl_format_seconds (char *buf, size_t size, uint64_t ms);

//  A message with its durations in seconds, freshly allocated: the
//  broker's "ttl_ms 500 is outside [1000, 3600000]" becomes "ttl 0.5 s is
//  outside the broker's range [1, 3600] s", any other "N ms" "N/1000 s".
char *gtctl_seconds_message (const char *message);

//  The events of a REPLAY reply, one line each, then "last_seq N".
void gtctl_print_replay (const gt_msg_t *reply);

//  A MAP reply: "map_version N mode single|cluster", then a table of the
//  brokers with their shards as ranges ("0-127,200"; "-" for none).  When
//  the brokers send epochs the column is SHARDS@EPOCH and each range is of
//  consecutive shards held at the same epoch: "0-127@1,128-200@3".
void gtctl_print_map (const gt_msg_t *reply);

//  Room for any broker's shards: 256 single-shard ranges "255@<uint64>,"
#define GTCTL_SHARDS_MAX 8192

//  A broker's shards as ranges into buf: "0-127,200", "-" for none; with
//  its epochs "0-127@1,128-200@3" (a range breaks where the epoch changes).
void gtctl_format_shards (char *buf, size_t size, const gt_broker_info_t *broker);

#endif
