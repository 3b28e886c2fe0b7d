-- Token lookup-self with the token in VAULT_TOKEN (root, or a user's).
local token = os.getenv("VAULT_TOKEN")
request = function()
  return wrk.format("GET", "/v1/auth/token/lookup-self", { ["X-Vault-Token"] = token })
end
