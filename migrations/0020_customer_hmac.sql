-- Customer ids as an HMAC under a secret key (R1.3, PIPL minimisation).
--
-- Ids were SHA-256 of a configured salt and the phone number. China's mobile numbers are about
-- 1.8 billion: hashing all of them takes a few core-hours, so anyone with the salt (a default
-- in the code, or any configuration file) got every phone back from the "PII-free" reporting
-- views. An id is now 'c-' and 24 hex digits of HMAC-SHA256(ORDERFLOW_CUSTOMER_KEY, the number
-- the platform identifies): without the key nobody can compute one.
--
-- The functions below compute ids as `activities.rules.customer_id_for` does, and re-key the
-- customers: this migration from the salted ids (orderflow.customer_salt), and
-- `python -m starter.db_cli rekey-customers` from one key to the next when the key is rotated
-- (README "Customer ids"). The runner hands the key over as orderflow.customer_key for this
-- transaction only. The embedded server has no pgcrypto, so the HMAC is written out over the
-- built-in sha256 (RFC 2104); tests compare it with Python's.
--
-- An order moves when its customer id is the one the previous secret gives its phone; its
-- profile, credit events, notices and admin record move with it. An id no order explains (a
-- profile whose orders are gone) stays as it was. It stops, changing nothing, when the previous
-- secret explains none of the ids that need moving (a wrong salt), when the new key is unset
-- while there are customers, or when a profile under a new id exists already.

CREATE OR REPLACE FUNCTION orderflow_hmac_pads(secret bytea, OUT inner_pad bytea,
                                               OUT outer_pad bytea)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    block bytea;
BEGIN
    IF length(secret) > 64 THEN
        secret := sha256(secret);
    END IF;
    block := secret || decode(repeat('00', 64 - length(secret)), 'hex');
    inner_pad := block;
    outer_pad := block;
    FOR i IN 0..63 LOOP
        inner_pad := set_byte(inner_pad, i, get_byte(block, i) # 54);  -- 0x36
        outer_pad := set_byte(outer_pad, i, get_byte(block, i) # 92);  -- 0x5c
    END LOOP;
END
$$;

-- The number the platform identifies: `activities.rules.customer_key`.
CREATE OR REPLACE FUNCTION orderflow_customer_key(phone text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n ~ '^1[3-9][0-9]{9}_[0-9]{4}$' THEN n
                ELSE regexp_replace(n, '[^0-9]', '', 'g') END
    FROM (SELECT regexp_replace(regexp_replace(coalesce(phone, ''), '[\s()]', '', 'g'),
                                '^(\+86|0086)', '') AS n) normalised
$$;

-- An id from the pads of the key (computed once per re-key, not once per order).
CREATE OR REPLACE FUNCTION orderflow_customer_id(inner_pad bytea, outer_pad bytea, phone text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT 'c-' || left(encode(sha256(outer_pad || sha256(
        inner_pad || convert_to(orderflow_customer_key(phone), 'UTF8'))), 'hex'), 24)
$$;

CREATE OR REPLACE FUNCTION orderflow_customer_id(secret text, phone text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT orderflow_customer_id(p.inner_pad, p.outer_pad, phone)
    FROM orderflow_hmac_pads(convert_to(secret, 'UTF8')) p
$$;

-- Moves every customer whose orders the previous secret explains to the id `secret` gives:
-- previous_kind 'salt' (the ids before this migration) or 'key' (a rotation). Returns the
-- number of profiles moved. Run it with the writers of customer ids stopped.
CREATE OR REPLACE FUNCTION orderflow_rekey_customers(previous_kind text, previous text,
                                                     secret text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    was_inner bytea;
    was_outer bytea;
    new_inner bytea;
    new_outer bytea;
    moved integer;
BEGIN
    LOCK TABLE customers, orders IN SHARE ROW EXCLUSIVE MODE;
    IF NOT EXISTS (SELECT 1 FROM customers) THEN
        RETURN 0;
    END IF;
    IF coalesce(secret, '') = '' THEN
        RAISE EXCEPTION 'customer ids: no key to compute them with'
            USING HINT = 'set ORDERFLOW_CUSTOMER_KEY for the migration runner, as for the '
                         'services';
    END IF;
    IF previous_kind NOT IN ('salt', 'key') THEN
        RAISE EXCEPTION 'customer ids: % is neither salt nor key', previous_kind;
    END IF;
    SELECT inner_pad, outer_pad INTO new_inner, new_outer
    FROM orderflow_hmac_pads(convert_to(secret, 'UTF8'));
    SELECT inner_pad, outer_pad INTO was_inner, was_outer
    FROM orderflow_hmac_pads(convert_to(coalesce(previous, ''), 'UTF8'));

    CREATE TEMP TABLE customer_moves ON COMMIT DROP AS
    WITH ids AS (
        SELECT o.customer_id,
               CASE WHEN previous_kind = 'salt' THEN
                        'c-' || left(encode(sha256(convert_to(
                            coalesce(previous, '') || ':' || orderflow_customer_key(o.customer_phone),
                            'UTF8')), 'hex'), 20)
                    ELSE orderflow_customer_id(was_inner, was_outer, o.customer_phone)
               END AS old_id,
               orderflow_customer_id(new_inner, new_outer, o.customer_phone) AS new_id
        FROM orders o
    )
    SELECT DISTINCT customer_id AS old_id, new_id
    FROM ids WHERE customer_id = old_id AND old_id <> new_id;

    IF NOT EXISTS (SELECT 1 FROM customer_moves)
       AND EXISTS (SELECT 1 FROM orders o
                   WHERE o.customer_id <> orderflow_customer_id(new_inner, new_outer,
                                                                o.customer_phone)) THEN
        RAISE EXCEPTION 'customer ids: the previous % explains none of them', previous_kind
            USING HINT = CASE previous_kind
                WHEN 'salt' THEN 'migrate with the ORDERFLOW_CUSTOMER_SALT the services used'
                ELSE 'set ORDERFLOW_CUSTOMER_KEY_PREVIOUS to the key the services used' END;
    END IF;
    IF EXISTS (SELECT old_id FROM customer_moves GROUP BY old_id HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'customer ids: one id explains two numbers';
    END IF;
    IF EXISTS (SELECT 1 FROM customer_moves m JOIN customers c ON c.customer_id = m.new_id) THEN
        RAISE EXCEPTION 'customer ids: profiles under the new key exist already'
            USING HINT = 'orders were recorded with the new key before the re-key; stop the '
                         'workers, merge those profiles by hand, then re-key';
    END IF;

    INSERT INTO customers (customer_id, name, phone, credit_score, status, first_seen_at,
                           last_order_at, updated_at)
    SELECT m.new_id, c.name, c.phone, c.credit_score, c.status, c.first_seen_at,
           c.last_order_at, c.updated_at
    FROM customer_moves m JOIN customers c ON c.customer_id = m.old_id;
    UPDATE orders o SET customer_id = m.new_id
    FROM customer_moves m WHERE o.customer_id = m.old_id;
    UPDATE credit_events e SET customer_id = m.new_id
    FROM customer_moves m WHERE e.customer_id = m.old_id;
    UPDATE notifications n SET recipient = m.new_id
    FROM customer_moves m WHERE n.audience = 'customer' AND n.recipient = m.old_id;
    UPDATE admin_audit a SET target = 'customer:' || m.new_id
    FROM customer_moves m WHERE a.target = 'customer:' || m.old_id;
    DELETE FROM customers c USING customer_moves m WHERE c.customer_id = m.old_id;
    GET DIAGNOSTICS moved = ROW_COUNT;
    DROP TABLE customer_moves;
    RETURN moved;
END
$$;

REVOKE ALL ON FUNCTION orderflow_rekey_customers(text, text, text) FROM PUBLIC;

SELECT orderflow_rekey_customers('salt', current_setting('orderflow.customer_salt', true),
                                 current_setting('orderflow.customer_key', true));
