use bot_core::store::contract::run_all;
use lepton_redis::RedisStore;

use crate::server::TestRedis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_passes_contract() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(redis.config("contract")).await?;
    run_all(&store).await?;
    Ok(())
}
