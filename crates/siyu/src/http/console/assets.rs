//! The console's static files, embedded in the binary: its stylesheet and script, and
//! ECharts (vendored from the npm registry by `scripts/vendor-echarts.sh`, with its
//! licence). They are served under a versioned path, so browsers may keep them for a year.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The path segment that changes whenever an asset may have: the crate's version and the
/// ECharts version.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "-",
    include_str!("../../../assets/vendor/echarts/VERSION")
);

/// An asset's URL.
pub fn url(file: &str) -> String {
    format!("/assets/{}/{file}", VERSION.trim())
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/console.js"),
    ),
    (
        "echarts.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/vendor/echarts/echarts.min.js"),
    ),
    (
        "echarts-LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../../assets/vendor/echarts/LICENSE"),
    ),
];

pub async fn serve(Path((version, file)): Path<(String, String)>) -> Response {
    let Some((_, kind, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // An old page asking for an older version gets today's file, not cached for long.
    let cache = if version == VERSION.trim() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    (
        [
            (header::CONTENT_TYPE, *kind),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        *bytes,
    )
        .into_response()
}
