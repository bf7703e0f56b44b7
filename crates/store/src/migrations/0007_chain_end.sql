-- 1 on the record whose call ended its customer's chain (success, do-not-call or a final result,
-- campana-engine's treatment::chain_step): no other number of the chain is offered again.
ALTER TABLE records ADD COLUMN ends_chain BIGINT NOT NULL DEFAULT 0;
