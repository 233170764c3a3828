-- Version 5: reserved for the account state (account disable), which another change
-- brings; until then one statement that changes nothing (every version runs one).
SELECT 1;
