-- Customer profiles re-keyed on the number the platform identifies (R5.3.3, R5.1(4), R1.3).
--
-- A Meituan privacy number (13812345678_1234) is a relay number shared by many customers and an
-- extension that tells them apart. Customer ids hashed the relay number alone, so everyone
-- behind one relay shared a profile: one's fraud lowered the others' credit, and two of them
-- ordering the same basket were refused as duplicates. Ids now hash the whole privacy number
-- (activities.rules.customer_key; plain numbers keep their ids); this re-keys the old profiles.
--
-- Ids are salted hashes and the salt is configuration (ORDERFLOW_CUSTOMER_SALT), not data: the
-- migration runner (activities.db.migrate) sets it, with the credit rules, for this transaction
-- as orderflow.customer_salt, orderflow.credit_*. The normalisation below is customer_key's, as
-- of this migration. An order is re-keyed only when its customer id is the old hash of its
-- phone, so an order this SQL cannot explain keeps its customer.
--
-- Each old profile that loses orders:
-- * all its orders go to one new id: renamed, keeping name, phone, score, status and dates;
-- * its orders go to several: one profile per new id (the old id among them when it keeps
--   orders of its own), with name and phone from its latest order, first seen and last order
--   from its orders, the score initial + its own credit events' deltas (clamped to 0..max),
--   the status from that score. A manual ban (banned while the score is not below the ban
--   threshold, which also takes in a ban the score has climbed back over, as only a person
--   lifts one) is inherited by every one of them: we cannot tell whose it was; safety first.
-- Orders, their credit events and notices to customers follow the order to its new id. An old
-- profile still referenced afterwards (a credit event of an order it no longer holds) stays as
-- it was; one referenced by nothing is removed.
--
-- Applied once by the runner, in one transaction; run again it finds nothing to move, and an
-- empty database needs no settings. It stops, changing nothing, when the salt explains none of
-- the customer ids (a wrong ORDERFLOW_CUSTOMER_SALT would otherwise re-key nobody, silently), or
-- when a profile under a new id exists already (the new code recorded orders before this ran).

-- Unset they are NULL: without privacy numbers nothing reads them, and with them a salt that
-- explains no customer id stops the migration below.
CREATE TEMP TABLE customer_key_settings ON COMMIT DROP AS
SELECT current_setting('orderflow.customer_salt', true) AS salt,
       NULLIF(current_setting('orderflow.credit_initial', true), '')::integer
           AS credit_initial,
       NULLIF(current_setting('orderflow.credit_max', true), '')::integer
           AS credit_max,
       NULLIF(current_setting('orderflow.credit_restricted_below', true), '')::integer
           AS restricted_below,
       NULLIF(current_setting('orderflow.credit_banned_below', true), '')::integer
           AS banned_below;

-- The orders of every customer with a privacy number among its orders (no other can lose
-- one), with the id the old key gave the phone, the one the new key gives it, and where the
-- order goes: to the new id when the old one is its customer's, else nowhere.
CREATE TEMP TABLE customer_key_orders ON COMMIT DROP AS
WITH cleaned AS (
    SELECT order_id, customer_id, created_at,
           regexp_replace(regexp_replace(customer_phone, '[\s()]', '', 'g'), '^(\+86|0086)', '')
               AS phone
    FROM orders
    WHERE customer_id IN (SELECT customer_id FROM orders WHERE customer_phone LIKE '%\_%')
), keyed AS (
    SELECT c.*,
           CASE WHEN phone ~ '^1[3-9][0-9]{9}_[0-9]{4}$' THEN split_part(phone, '_', 1)
                ELSE regexp_replace(phone, '[^0-9]', '', 'g') END AS old_key,
           CASE WHEN phone ~ '^1[3-9][0-9]{9}_[0-9]{4}$' THEN phone
                ELSE regexp_replace(phone, '[^0-9]', '', 'g') END AS new_key
    FROM cleaned c
), hashed AS (
    SELECT k.order_id, k.customer_id, k.created_at,
           'c-' || left(encode(sha256(convert_to(s.salt || ':' || k.old_key, 'UTF8')), 'hex'), 20)
               AS old_id,
           'c-' || left(encode(sha256(convert_to(s.salt || ':' || k.new_key, 'UTF8')), 'hex'), 20)
               AS new_id
    FROM keyed k CROSS JOIN customer_key_settings s
)
SELECT order_id, customer_id, created_at, old_id, new_id,
       CASE WHEN customer_id = old_id THEN new_id ELSE customer_id END AS target_id
FROM hashed;

-- Each old profile that loses an order, every id its orders go to, and whether that is a
-- rename (one id) or a split (several).
CREATE TEMP TABLE customer_key_targets ON COMMIT DROP AS
WITH destinations AS (
    SELECT DISTINCT customer_id AS old_id, target_id AS new_id
    FROM customer_key_orders
    WHERE customer_id IN (
        SELECT customer_id FROM customer_key_orders WHERE target_id <> customer_id)
)
SELECT d.old_id, d.new_id,
       count(*) OVER (PARTITION BY d.old_id) = 1 AS renamed,
       c.status = 'banned' AND c.credit_score >= s.banned_below AS manual_ban
FROM destinations d
JOIN customers c ON c.customer_id = d.old_id
CROSS JOIN customer_key_settings s;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM customer_key_orders WHERE customer_id ~ '^c-[0-9a-f]{20}$')
       AND NOT EXISTS (
           SELECT 1 FROM customer_key_orders WHERE customer_id IN (old_id, new_id)) THEN
        RAISE EXCEPTION 'customer ids: the salt explains none of them'
            USING HINT = 'apply this migration with the migration runner and the '
                         'ORDERFLOW_CUSTOMER_SALT the services use';
    END IF;
    IF EXISTS (
        SELECT 1 FROM customer_key_targets t JOIN customers c ON c.customer_id = t.new_id
        WHERE t.new_id <> t.old_id) THEN
        RAISE EXCEPTION 'customer ids: profiles under the new key exist already'
            USING HINT = 'orders were recorded by the new code before this migration; '
                         'merge those profiles by hand, then migrate';
    END IF;
END
$$;

-- The new profiles, as copies of the old: final for a rename, overwritten below for a split.
INSERT INTO customers (customer_id, name, phone, credit_score, status, first_seen_at,
                       last_order_at)
SELECT t.new_id, c.name, c.phone, c.credit_score, c.status, c.first_seen_at, c.last_order_at
FROM customer_key_targets t JOIN customers c ON c.customer_id = t.old_id
WHERE t.new_id <> t.old_id;

UPDATE orders o SET customer_id = k.target_id, updated_at = now()
FROM customer_key_orders k
WHERE k.order_id = o.order_id AND k.target_id <> k.customer_id;

-- A credit event follows its order; one of an order its profile no longer holds follows a
-- rename, and otherwise stays.
UPDATE credit_events e
SET customer_id = COALESCE(
        (SELECT k.target_id FROM customer_key_orders k
         WHERE k.order_id = e.order_id AND k.customer_id = e.customer_id),
        (SELECT t.new_id FROM customer_key_targets t
         WHERE t.old_id = e.customer_id AND t.renamed),
        e.customer_id)
WHERE e.customer_id IN (SELECT old_id FROM customer_key_targets);

UPDATE notifications n SET recipient = k.target_id
FROM customer_key_orders k
WHERE n.audience = 'customer' AND n.order_id = k.order_id AND n.recipient = k.customer_id
  AND k.target_id <> k.customer_id;

-- A split profile from its own orders and credit events. An event's delta is what it moved
-- the shared score by; where that score was already at 0 a penalty moved it less than the
-- penalty (orderflow.credit_delta_<kind>), and the whole penalty counts: safety first.
WITH split AS (
    SELECT new_id AS customer_id, bool_or(manual_ban) AS manual_ban
    FROM customer_key_targets WHERE NOT renamed GROUP BY new_id
), latest AS (
    SELECT DISTINCT ON (o.customer_id) o.customer_id, o.customer_name,
           split_part(o.customer_phone, '_', 1) AS phone  -- as record_order writes it
    FROM orders o JOIN split USING (customer_id)
    ORDER BY o.customer_id, o.created_at DESC, o.order_id DESC
), span AS (
    SELECT o.customer_id, min(o.created_at) AS first_at, max(o.created_at) AS last_at
    FROM orders o JOIN split USING (customer_id)
    GROUP BY o.customer_id
), score AS (
    SELECT t.customer_id,
           greatest(0, least(s.credit_max, s.credit_initial + COALESCE(sum(
               CASE WHEN e.score_after = 0 AND p.penalty < e.delta THEN p.penalty
                    ELSE e.delta END), 0))) AS score
    FROM split t
    CROSS JOIN customer_key_settings s
    LEFT JOIN credit_events e ON e.customer_id = t.customer_id
    LEFT JOIN LATERAL (
        SELECT NULLIF(current_setting('orderflow.credit_delta_' || e.kind, true), '')::integer
                   AS penalty
    ) p ON true
    GROUP BY t.customer_id, s.credit_max, s.credit_initial
)
UPDATE customers c
SET name = l.customer_name, phone = l.phone, first_seen_at = sp.first_at,
    last_order_at = sp.last_at, credit_score = sc.score,
    status = CASE WHEN split.manual_ban OR sc.score < s.banned_below THEN 'banned'
                  WHEN sc.score < s.restricted_below THEN 'restricted'
                  ELSE 'good' END,
    updated_at = now()
FROM split
JOIN latest l USING (customer_id)
JOIN span sp USING (customer_id)
JOIN score sc USING (customer_id)
CROSS JOIN customer_key_settings s
WHERE c.customer_id = split.customer_id;

DELETE FROM customers c
WHERE c.customer_id IN (SELECT old_id FROM customer_key_targets)
  AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id)
  AND NOT EXISTS (SELECT 1 FROM credit_events e WHERE e.customer_id = c.customer_id);
