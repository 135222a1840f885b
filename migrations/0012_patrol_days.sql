-- R2.1.2 a day whose every sequence number is resolved and every order settled is not walked
-- again: how the walk of the previous day after midnight comes to an end.
CREATE TABLE patrol_days (
    store_code    text NOT NULL REFERENCES stores (code),
    platform_date text NOT NULL,  -- yyyyMMdd in platform time
    last_seq      integer NOT NULL,  -- the day's last sequence number: the next one is 806
    settled_at    timestamptz NOT NULL,
    PRIMARY KEY (store_code, platform_date)
);

DO $$
BEGIN
    -- The service role gets the new table by 0007's default privileges; it holds no personal
    -- data, so reporting reads it as it reads patrol_day_seqs.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_reporting') THEN
        EXECUTE 'GRANT SELECT ON patrol_days TO orderflow_reporting';
    END IF;
END
$$;
