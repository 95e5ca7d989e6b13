//! The tenant's settings (`siyu config`, the console's settings page): read with their
//! defaults, and set — a setting the stages depend on (the zone, the repurchase cycle,
//! the VIP rule) brings the segments and tags up to date at once, under the occasion
//! `config KEY`.

use siyu_core::TenantZone;
use siyu_core::settings::Setting;
use siyu_store::{Store, Tenant};

use super::segments::{Evaluation, evaluate_now};

/// Every setting with its value: the stored one, else the default.
pub fn values(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Vec<(Setting, String)>> {
    let stored = store.settings(tenant)?;
    Ok(Setting::ALL
        .into_iter()
        .map(|setting| {
            let value = match setting {
                Setting::TimeZone => tenant.zone.name().to_owned(),
                _ => stored
                    .iter()
                    .find(|(k, _)| k == setting.key())
                    .map_or_else(|| setting.default_value(), |(_, v)| v.clone()),
            };
            (setting, value)
        })
        .collect())
}

/// Sets `setting` to `value` (checked first); the value kept, and the evaluation it caused
/// when the setting moves stages.
pub fn set(
    store: &mut dyn Store,
    tenant: &Tenant,
    setting: Setting,
    value: &str,
) -> anyhow::Result<(String, Option<Evaluation>)> {
    let value = setting.validate(value)?;
    match setting {
        Setting::TimeZone => store.set_time_zone(tenant, &TenantZone::named(&value)?)?,
        _ => store.set_setting(tenant, setting.key(), &value)?,
    }
    if setting == Setting::Lang {
        return Ok((value, None));
    }
    let tenant = store.tenant(&tenant.name)?;
    let cause = format!("config {}", setting.key());
    let (evaluation, _) = evaluate_now(store, &tenant, &cause)?;
    Ok((value, Some(evaluation)))
}
