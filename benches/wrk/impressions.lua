-- recordImpressions as a page does on every view: three cards of a list it was shown, a
-- list of its own per request, so every impression is a new row. The lists' ids come from
-- IDS_FILE (one per line, as list-ids.lua collects them; each used once, then again from
-- the top), their three first assets from ASSETS (comma-separated). Used by
-- impressions.sh through server-cpu.sh (BODY is ignored).
-- Each thread's number (1, 2, ...), set by setup() as a global of the thread's state.
threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local key = os.getenv("KEY")
  if key and key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
  ids = {}
  for line in io.lines(os.getenv("IDS_FILE")) do
    ids[#ids + 1] = line
  end
  assets = {}
  for a in string.gmatch(os.getenv("ASSETS"), "[^,]+") do
    assets[#assets + 1] = '\\"' .. a .. '\\"'
  end
  -- Two threads take alternate ids.
  next_id = tid
end
function request()
  local id = ids[next_id]
  next_id = next_id + 2
  if next_id > #ids then next_id = tid end
  local body = '{"query":"mutation($id: ID!) { recordImpressions(recommendationId: $id, assetIds: [' ..
    table.concat(assets, ", ") .. ']) { recorded } }","variables":{"id":"' .. id .. '"}}'
  return wrk.format(nil, nil, nil, body)
end
