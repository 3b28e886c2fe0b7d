-- Transit encrypt, batch of 100 items of 100-byte plaintexts, key "bench-aes".
local token = os.getenv("VAULT_TOKEN")
local items = {}
for i = 1, 100 do
  items[i] = '{"plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiYw=="}'
end
local body = '{"batch_input":[' .. table.concat(items, ",") .. ']}'
local headers = { ["X-Vault-Token"] = token, ["Content-Type"] = "application/json" }
request = function()
  return wrk.format("POST", "/v1/transit/encrypt/bench-aes", headers, body)
end
