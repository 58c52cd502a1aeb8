-- 003: event topics start with the service (GTLP.md §6, §12).
--
-- A topic was "verb.OBJECT_TYPE.service_id"; it is now
-- "service_id" U+001F "verb.OBJECT_TYPE", so that a service's prefix
-- ("service_id" U+001F) reaches its events and no other service's.  The
-- history kept for REPLAY is rewritten to the new form (its bodies are
-- unchanged); the broker filters REPLAY by these topics.
UPDATE gt_events
   SET topic = substr (topic, length (split_part (topic, '.', 1)) + length (split_part (topic, '.', 2)) + 3)
               || chr (31) || split_part (topic, '.', 1) || '.' || split_part (topic, '.', 2)
 WHERE strpos (topic, chr (31)) = 0;
