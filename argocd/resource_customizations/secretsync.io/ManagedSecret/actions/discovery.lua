-- secretsync: the actions Argo CD offers on a ManagedSecret.
-- force-sync reads the values from the store now; it is offered unless the
-- ManagedSecret is being deleted. rotate-now generates and stores a new value
-- now (what `secretsync rotate` does); it is offered only with spec.rotation,
-- and not while a rotation or an earlier request is still under way (a second
-- click would not rotate twice).
local actions = {}
local deleting = obj.metadata.deletionTimestamp ~= nil
actions["force-sync"] = { disabled = deleting, iconClass = "fa fa-fw fa-sync", displayName = "Force sync" }

local status = obj.status or {}
local requested = (obj.metadata.annotations or {})["secretsync.io/rotate-now"]
local pending = requested ~= nil and requested ~= "" and requested ~= status.handledRotateNow
local rotates = obj.spec ~= nil and obj.spec.rotation ~= nil
actions["rotate-now"] = {
  disabled = deleting or not rotates or pending or status.rotationInProgress ~= nil,
  iconClass = "fa fa-fw fa-key",
  displayName = "Rotate now",
}
return actions
