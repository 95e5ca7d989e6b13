-- The audit log also records a customer's phone shown unmasked in the console
-- (`view_phone`: an admin's reveal).
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action IN ('export', 'erase', 'opt_out', 'opt_in', 'view_phone'));
