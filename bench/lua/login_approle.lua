-- AppRole login with one role ID and one (unlimited) secret ID.
local body = '{"role_id":"' .. os.getenv("BENCH_ROLE_ID") .. '","secret_id":"' ..
  os.getenv("BENCH_SECRET_ID") .. '"}'
request = function()
  return wrk.format("POST", "/v1/auth/approle/login",
    { ["Content-Type"] = "application/json" }, body)
end
