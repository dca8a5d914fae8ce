//! Embedded Avi controller emulator (issue 3).

/// Command-line arguments of `ako emulator`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {}

/// Runs the emulator until shutdown.
pub async fn run(_args: EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("the emulator is not built yet")
}
