-- JWT login with one signed token (BENCH_JWT_ALG, verified against a configured public key).
local body = '{"role":"bench","jwt":"' .. os.getenv("BENCH_JWT") .. '"}'
request = function()
  return wrk.format("POST", "/v1/auth/jwt/login",
    { ["Content-Type"] = "application/json" }, body)
end
