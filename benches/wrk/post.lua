-- POSTs the GraphQL body in BODY_FILE (env) to /graphql.
local f = io.open(os.getenv("BODY_FILE"), "r")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
-- With KEY set, the request carries it as its credential.
local key = os.getenv("KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
