-- secretsync: rotate now, as `secretsync rotate NAMESPACE/NAME` does. A new
-- value of the secretsync.io/rotate-now annotation makes the operator generate
-- a new value, write it to the store as a new version and sync the Secret,
-- once (status.handledRotateNow records the request it took).
local os = require("os")
if obj.spec == nil or obj.spec.rotation == nil then
  error("this ManagedSecret has no spec.rotation: nothing to rotate")
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["secretsync.io/rotate-now"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
