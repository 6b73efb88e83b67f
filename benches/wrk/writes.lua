-- Mixed account writes, as a CRM sync does while page views stream in: upsertAccount,
-- upsertContact, recordEngagement in turn, on accounts and contacts of the thread's own.
-- Run one connection per thread (-t N -c N) so each connection's writes come in order.
-- Prints the responses that carry GraphQL errors (the first two of each thread) and their
-- count. wrk calls request() once before the run to probe it, so the first thread's first
-- account write is never sent and its first contact and event come back NOT_FOUND: expect
-- 2 errors from the script itself.
local counter = 0
errors = 0
local threads = {}
local tid = 0
function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local round = math.floor((counter - 1) / 3)
  local account = "w" .. tid .. "-a" .. (round % 50)
  local contact = "w" .. tid .. "-p" .. round
  local step = (counter - 1) % 3
  local body
  if step == 0 then
    body = '{"query":"mutation($a: AccountInput!) { upsertAccount(account: $a) { id } }","variables":{"a":{"id":"' .. account .. '","name":"A","industry":"retail","stage":"DECISION"}}}'
  elseif step == 1 then
    body = '{"query":"mutation($c: ContactInput!) { upsertContact(contact: $c) { id } }","variables":{"c":{"id":"' .. contact .. '","accountId":"' .. account .. '","name":"P","role":"FINANCE"}}}'
  else
    body = '{"query":"mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }","variables":{"e":{"accountId":"' .. account .. '","contactId":"' .. contact .. '","assetId":"pricing-sheet","kind":"VIEW","clientEventId":"' .. contact .. '"}}}'
  end
  return wrk.format(nil, "/graphql", nil, body)
end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
    if errors <= 2 then io.write("error: " .. status .. " " .. body .. "\n") end
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("errors") end
  io.write(string.format("graphql errors: %d of %d\n", total, summary.requests))
end
