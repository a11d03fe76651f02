-- rlprice least-privilege role (applied by `rlprice db init --roles`; idempotent).
-- rlprice_app is a NOLOGIN group role: it may read the history tables and write only the run
-- tables.  Give it to the login role the nightly job uses, e.g.
--   CREATE ROLE pricing_job LOGIN PASSWORD '...';  GRANT rlprice_app TO pricing_job;
-- The loader and the push create temporary tables, which needs the TEMPORARY privilege on the
-- database (granted to PUBLIC by default), and CONNECT on the database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rlprice_app') THEN
        CREATE ROLE rlprice_app NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO rlprice_app;
REVOKE ALL ON products, sales, competitor_prices FROM rlprice_app;
GRANT SELECT ON products, sales, competitor_prices TO rlprice_app;
REVOKE ALL ON pricing_runs, pricing_run_attempts, price_recommendations, rejected_rows FROM rlprice_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON pricing_runs, pricing_run_attempts, price_recommendations, rejected_rows
    TO rlprice_app;
