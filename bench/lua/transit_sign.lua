-- Transit sign: a 100-byte input with the ed25519 key "bench-ed".
local token = os.getenv("VAULT_TOKEN")
local body = '{"input":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiYw=="}'
local headers = { ["X-Vault-Token"] = token, ["Content-Type"] = "application/json" }
request = function()
  return wrk.format("POST", "/v1/transit/sign/bench-ed", headers, body)
end
