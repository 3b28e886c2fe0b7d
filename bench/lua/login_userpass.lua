-- userpass login as one of BENCH_USERS users (user-0 … user-N-1), chosen at random, so that
-- the per-username lock (lockout bookkeeping) does not serialise the whole run.
local users = tonumber(os.getenv("BENCH_USERS") or "64")
local body = '{"password":"' .. os.getenv("BENCH_PASSWORD") .. '"}'
math.randomseed(os.time())
request = function()
  local n = math.random(0, users - 1)
  return wrk.format("POST", "/v1/auth/userpass/login/user-" .. n,
    { ["Content-Type"] = "application/json" }, body)
end
