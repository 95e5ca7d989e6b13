//! Scale-out: PostgreSQL, selected by a `postgres://` URL.

use crate::{Result, StoreError};

pub struct PgStore {
    _client: ::postgres::Client,
}

impl PgStore {
    pub fn connect(_url: &str) -> Result<PgStore> {
        Err(StoreError::Other("PostgreSQL backend not built yet".into()))
    }
}
