-- The first try at commit (activities/first_try.py, docs/decisions/0013-first-try-at-commit.md).
-- A failed first try records when its route may be tried again (its backoff, or the receiver's
-- Retry-After): a notification's later attempts wait until then (activities/route_claims.py). NULL on the
-- delivery workflow's own attempts, and on every attempt that did not fail.
ALTER TABLE delivery_attempts ADD COLUMN IF NOT EXISTS retry_at timestamptz;
