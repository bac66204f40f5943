-- secretsync: read the values from the store now instead of at the next
-- refresh. A new value of the secretsync.io/force-sync annotation makes the
-- operator fetch every key afresh (no cached read) and update the Secret.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["secretsync.io/force-sync"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
