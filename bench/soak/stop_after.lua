-- wrk script: each thread stops after WRK_LIMIT responses (0 = run for -d),
-- so a run is "N requests" rather than "N seconds". -d is the upper bound.
local limit = tonumber(os.getenv("WRK_LIMIT") or "0")
local n = 0
function response(status, headers, body)
  n = n + 1
  if limit > 0 and n >= limit then
    wrk.thread:stop()
  end
end
