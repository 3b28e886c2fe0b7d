-- Transit decrypt: one ciphertext of a 100-byte plaintext (TRANSIT_CIPHERTEXT), key "bench-aes".
local token = os.getenv("VAULT_TOKEN")
local body = '{"ciphertext":"' .. os.getenv("TRANSIT_CIPHERTEXT") .. '"}'
local headers = { ["X-Vault-Token"] = token, ["Content-Type"] = "application/json" }
request = function()
  return wrk.format("POST", "/v1/transit/decrypt/bench-aes", headers, body)
end
