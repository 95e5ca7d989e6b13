-- The console's users: people who sign in to one tenant's web console, each in a role as
-- the API's tokens. Only an argon2 hash of the password is kept. After repeated failed
-- sign-ins a user is locked until `locked_until` (microseconds since the epoch).
CREATE TABLE console_users (
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;

-- Signed-in sessions, by the SHA-256 of the cookie's secret (never the secret), with the
-- form token (CSRF) of the session.
CREATE TABLE console_sessions (
    session_hash TEXT PRIMARY KEY,
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    user_name    TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_by_user ON console_sessions (tenant_id, user_name);
