-- Which endpoint runs the organisation's IQA queries (docs/imis.md#the-query-endpoint): 'query' is
-- /api/Query (iMIS 20.3.77 and later: flat rows, about a fifth of the JSON), 'iqa' the deprecated /api/IQA.
-- The API detects it when the iMIS account is linked (endpoint_checked_at); an account linked before this
-- column existed keeps 'iqa', which every site serves, until it is linked or checked again.
ALTER TABLE imis_accounts
    ADD COLUMN query_endpoint text NOT NULL DEFAULT 'iqa' CHECK (query_endpoint IN ('query', 'iqa')),
    ADD COLUMN endpoint_checked_at timestamptz;
