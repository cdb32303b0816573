//! Node configuration: Crossbar version-2 `config.json` → validated `NodeConfig`.

pub mod model;

pub use model::*;
