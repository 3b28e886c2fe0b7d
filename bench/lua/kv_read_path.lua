-- KV v2 read of one path (BENCH_KV_PATH, e.g. /v1/secret/data/<name>/x) with VAULT_TOKEN.
local token = os.getenv("VAULT_TOKEN")
local path = os.getenv("BENCH_KV_PATH")
request = function()
  return wrk.format("GET", path, { ["X-Vault-Token"] = token })
end
