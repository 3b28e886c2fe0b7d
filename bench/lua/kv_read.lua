-- KV v2 read of one of 1,000 preloaded secrets, chosen at random.
local token = os.getenv("VAULT_TOKEN")
math.randomseed(os.time())
request = function()
  local n = math.random(0, 999)
  return wrk.format("GET", "/v1/secret/data/bench/" .. n, { ["X-Vault-Token"] = token })
end
