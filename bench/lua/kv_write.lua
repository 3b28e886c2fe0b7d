-- Durable KV v2 write: a new version of one of 1,000 secrets, chosen at random.
local token = os.getenv("VAULT_TOKEN")
math.randomseed(os.time())
local body = '{"data":{"username":"svc","password":"0123456789abcdef0123"}}'
request = function()
  local n = math.random(0, 999)
  return wrk.format("POST", "/v1/secret/data/bench/" .. n,
    { ["X-Vault-Token"] = token, ["Content-Type"] = "application/json" }, body)
end
