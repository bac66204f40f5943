-- secretsync: the Ready condition, for the current generation.
local hs = { status = "Progressing", message = "Waiting for secretsync to reconcile this object" }
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "Waiting for secretsync to process the latest change"
  return hs
end
for _, condition in ipairs(obj.status.conditions or {}) do
  if condition.type == "Ready" then
    if generation ~= nil and condition.observedGeneration ~= nil and condition.observedGeneration < generation then
      hs.message = "Waiting for secretsync to process the latest change"
    elseif condition.status == "True" then
      hs.status = "Healthy"
      hs.message = condition.message or "Ready"
    elseif condition.status == "False" then
      hs.status = "Degraded"
      hs.message = (condition.reason or "NotReady") .. ": " .. (condition.message or "")
    else
      hs.message = condition.message or "Ready is Unknown"
    end
    return hs
  end
end
return hs
