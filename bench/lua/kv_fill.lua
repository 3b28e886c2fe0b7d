-- Fills the store: every request writes a new secret, fill/<run>/<thread>-<n>.
-- FILL_RUN (environment) keeps separate runs from overwriting each other.
local token = os.getenv("VAULT_TOKEN")
local run = os.getenv("FILL_RUN") or "0"
local body = '{"data":{"username":"svc","password":"0123456789abcdef01234567"}}'
local threads = 0

setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end

init = function(args)
  counter = 0
end

request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/secret/data/fill/" .. run .. "/" .. id .. "-" .. counter,
    { ["X-Vault-Token"] = token, ["Content-Type"] = "application/json" }, body)
end
