-- Transit encrypt: one 100-byte plaintext with the aes256-gcm96 key "bench-aes".
local token = os.getenv("VAULT_TOKEN")
local body = '{"plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiYw=="}'
local headers = { ["X-Vault-Token"] = token, ["Content-Type"] = "application/json" }
request = function()
  return wrk.format("POST", "/v1/transit/encrypt/bench-aes", headers, body)
end
