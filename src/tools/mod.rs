//! Offline command-line tools built on the core: `ako check`.

pub mod check;
