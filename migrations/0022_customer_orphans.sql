-- Customer profiles no order names keep an id nobody can compute (R1.3, PIPL minimisation).
--
-- Re-keying (0020, `db_cli rekey-customers`) moves the profiles their orders explain. A profile
-- no order names any more (its order's phone was corrected, so the order went to the new
-- number's profile; or its orders are gone) kept its id: under the salt of before 0020, or a
-- key being rotated away from, whoever has that secret can compute it from a phone. Each such
-- profile gets an opaque id ('o-' and 24 random hex digits), taking its credit events, notices
-- and admin record along; nothing can be linked to it by a phone any more, and nothing needs
-- to. Run again (each rotation does), it finds only the profiles orphaned since.

CREATE OR REPLACE FUNCTION orderflow_unlink_orphans() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    moved integer;
BEGIN
    LOCK TABLE customers, orders IN SHARE ROW EXCLUSIVE MODE;
    CREATE TEMP TABLE customer_orphans ON COMMIT DROP AS
    SELECT c.customer_id AS old_id,
           'o-' || left(replace(gen_random_uuid()::text, '-', ''), 24) AS new_id
    FROM customers c
    WHERE c.customer_id NOT LIKE 'o-%'
      AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id);

    INSERT INTO customers (customer_id, name, phone, credit_score, status, first_seen_at,
                           last_order_at, updated_at)
    SELECT m.new_id, c.name, c.phone, c.credit_score, c.status, c.first_seen_at,
           c.last_order_at, c.updated_at
    FROM customer_orphans m JOIN customers c ON c.customer_id = m.old_id;
    UPDATE credit_events e SET customer_id = m.new_id
    FROM customer_orphans m WHERE e.customer_id = m.old_id;
    UPDATE notifications n SET recipient = m.new_id
    FROM customer_orphans m WHERE n.audience = 'customer' AND n.recipient = m.old_id;
    UPDATE admin_audit a SET target = 'customer:' || m.new_id
    FROM customer_orphans m WHERE a.target = 'customer:' || m.old_id;
    DELETE FROM customers c USING customer_orphans m WHERE c.customer_id = m.old_id;
    GET DIAGNOSTICS moved = ROW_COUNT;
    DROP TABLE customer_orphans;
    RETURN moved;
END
$$;

REVOKE ALL ON FUNCTION orderflow_unlink_orphans() FROM PUBLIC;

SELECT orderflow_unlink_orphans();
