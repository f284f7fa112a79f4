use bot_core::store::contract::run_all;
use bot_core::MemoryStore;
use lepton_store::EmbeddedStore;

use crate::common::TempFolder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_contract() -> anyhow::Result<()> {
    let folder = TempFolder::new("contract")?;
    let store = EmbeddedStore::open(&folder.store_path())?;
    run_all(&store).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_contract() -> anyhow::Result<()> {
    run_all(&MemoryStore::new()).await?;
    Ok(())
}
