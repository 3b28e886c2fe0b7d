-- Transit decrypt, batch of 100 ciphertexts of 100-byte plaintexts, key "bench-aes".
-- The request body is prepared by bench/transit.py in the file named by TRANSIT_BATCH_BODY.
local token = os.getenv("VAULT_TOKEN")
local file = assert(io.open(os.getenv("TRANSIT_BATCH_BODY"), "r"))
local body = file:read("*a")
file:close()
local headers = { ["X-Vault-Token"] = token, ["Content-Type"] = "application/json" }
request = function()
  return wrk.format("POST", "/v1/transit/decrypt/bench-aes", headers, body)
end
