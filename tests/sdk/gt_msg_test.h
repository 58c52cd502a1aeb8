/*  gt_msg_test.h — pieces of the codec's selftest shared by gt_msg_test.c
    and gt_msg_test_reject.c (the test is split in two files so that each
    reads in one sitting).  Test code: failures are asserts.  */
#ifndef GT_MSG_TEST_H_INCLUDED
#define GT_MSG_TEST_H_INCLUDED

#include "gt_msg.h"

//  Clear msg and start a message of kind, protocol version 1, with rid
//  (an event has none: pass 0).
void gt_msg_test_init (gt_msg_t *msg, gt_msg_kind_t kind, uint64_t rid);

//  Encode msg; the encoding must succeed.  Caller destroys the buffer.
msgpack_sbuffer gt_msg_test_encode (const gt_msg_t *msg);

//  Encode msg and decode it back: it must decode, as its kind and with its
//  rid.  Returns the decoded message (caller destroys).
gt_msg_t *gt_msg_test_decoded (const gt_msg_t *msg);

//  Decode and expect the code, the reported rid and (if given) a substring
//  of the error message.  Returns the message on success (caller destroys).
gt_msg_t *gt_msg_test_expect (const void *data, size_t size, gt_msg_kind_t kind,
                              gt_code_t code, uint64_t rid, const char *err_part);

//  Fill lease with fixed test values, meta_count entries from meta and
//  cleanup (may be NULL).  Strings are borrowed: never clear or free it.
void gt_msg_test_fill_lease (gt_lease_info_t *lease, gt_meta_entry_t *meta,
                             size_t meta_count, gt_cleanup_t *cleanup);

//  What the decoder must refuse, and the non-canonical bodies it accepts
//  (gt_msg_test_reject.c).
void gt_msg_test_rejections (void);

#endif
