// argocd-lua runs Argo CD resource customizations (health checks, action
// discovery, actions) the way Argo CD's util/lua and its API server do, so
// that secretsync's scripts are tested in the interpreter that will run them:
//
//   - gopher-lua (the interpreter Argo CD embeds) with only the package, base
//     and table libraries open, plus Argo CD's restricted os library (time and
//     date only), which scripts get with `local os = require("os")`; the
//     object as the global `obj`; one second of run time;
//   - the returned table encoded with layeh.com/gopher-json (an empty table
//     becomes `[]`), as Argo CD encodes it;
//   - health: the table read as {status, message};
//   - discovery: the table read as a map of action name to {disabled,
//     iconClass, displayName} (an empty table: no actions);
//   - action: the returned object, its empty tables put back as the objects
//     they were in the live object, and the JSON merge patch from the live
//     object to it (github.com/evanphx/json-patch), which is what Argo CD sends
//     to the API server (a status change would go to the status subresource:
//     reported so that tests can refuse it).
//
// Input on stdin: {"mode": "health"|"discovery"|"action", "script": "...", "objects": [{...}, ...]}
// ("health" when mode is absent).
// Output on stdout: one result per object: {"status", "message"}, {"actions"},
// {"object", "patch"}, or {"error"}.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	jsonpatch "github.com/evanphx/json-patch"
	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

type request struct {
	Mode    string        `json:"mode"`
	Script  string        `json:"script"`
	Objects []interface{} `json:"objects"`
}

type action struct {
	Name        string `json:"name"`
	Disabled    bool   `json:"disabled"`
	IconClass   string `json:"iconClass,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

type result struct {
	Status  string          `json:"status,omitempty"`
	Message string          `json:"message,omitempty"`
	Actions []action        `json:"actions,omitempty"`
	Object  interface{}     `json:"object,omitempty"`
	Patch   json.RawMessage `json:"patch,omitempty"`
	Error   string          `json:"error,omitempty"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintf(os.Stderr, "argocd-lua: reading the request: %v\n", err)
		os.Exit(2)
	}
	run := map[string]func(string, interface{}) result{
		"":          health,
		"health":    health,
		"discovery": discovery,
		"action":    runAction,
	}[req.Mode]
	if run == nil {
		fmt.Fprintf(os.Stderr, "argocd-lua: unknown mode %q\n", req.Mode)
		os.Exit(2)
	}
	results := make([]result, 0, len(req.Objects))
	for _, obj := range req.Objects {
		results = append(results, run(req.Script, obj))
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "argocd-lua: %v\n", err)
		os.Exit(2)
	}
}

// runLua runs script with obj as the global `obj` and returns its result encoded as JSON.
func runLua(script string, obj interface{}) ([]byte, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	return luajson.Encode(ret)
}

func health(script string, obj interface{}) result {
	encoded, err := runLua(script, obj)
	if err != nil {
		return result{Error: err.Error()}
	}
	var out result
	if err := json.Unmarshal(encoded, &struct {
		Status  *string `json:"status"`
		Message *string `json:"message"`
	}{&out.Status, &out.Message}); err != nil {
		return result{Error: err.Error()}
	}
	switch out.Status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
		return out
	}
	// What Argo CD shows for a status it does not know.
	return result{Status: "Unknown", Message: "Lua returned an invalid health status"}
}

func discovery(script string, obj interface{}) result {
	encoded, err := runLua(script, obj)
	if err != nil {
		return result{Error: err.Error()}
	}
	out := result{Actions: []action{}}
	if string(encoded) == "[]" {
		return out
	}
	var byName map[string]json.RawMessage
	if err := json.Unmarshal(encoded, &byName); err != nil {
		return result{Error: err.Error()}
	}
	for name, raw := range byName {
		a := action{Name: name}
		// An action given as an empty table ({}) is encoded as [] and is enabled.
		if string(raw) != "[]" {
			if err := json.Unmarshal(raw, &a); err != nil {
				return result{Error: fmt.Sprintf("action %s: %v", name, err)}
			}
			a.Name = name
		}
		out.Actions = append(out.Actions, a)
	}
	return out
}

func runAction(script string, obj interface{}) result {
	encoded, err := runLua(script, obj)
	if err != nil {
		return result{Error: err.Error()}
	}
	var returned map[string]interface{}
	if err := json.Unmarshal(encoded, &returned); err != nil {
		return result{Error: fmt.Sprintf("the action must return the object (one table): %v", err)}
	}
	live, ok := obj.(map[string]interface{})
	if !ok {
		return result{Error: "the live object is not a JSON object"}
	}
	restoreEmptyObjects(returned, live)
	liveBytes, err := json.Marshal(live)
	if err != nil {
		return result{Error: err.Error()}
	}
	newBytes, err := json.Marshal(returned)
	if err != nil {
		return result{Error: err.Error()}
	}
	patch, err := jsonpatch.CreateMergePatch(liveBytes, newBytes)
	if err != nil {
		return result{Error: err.Error()}
	}
	return result{Object: returned, Patch: patch}
}

// restoreEmptyObjects undoes what encoding did to empty objects: Lua cannot tell an empty object
// from an empty array, so every empty table came back as []; where the live object held an object,
// it is an object again (Argo CD does the same before it computes the patch).
func restoreEmptyObjects(returned, live map[string]interface{}) {
	for key, liveValue := range live {
		switch value := returned[key].(type) {
		case map[string]interface{}:
			if liveMap, ok := liveValue.(map[string]interface{}); ok {
				restoreEmptyObjects(value, liveMap)
			}
		case []interface{}:
			switch liveTyped := liveValue.(type) {
			case map[string]interface{}:
				if len(value) == 0 {
					returned[key] = liveTyped
				}
			case []interface{}:
				restoreEmptyObjectsInArray(value, liveTyped)
			}
		}
	}
}

func restoreEmptyObjectsInArray(returned, live []interface{}) {
	for i := range returned {
		if i >= len(live) {
			return
		}
		switch value := returned[i].(type) {
		case map[string]interface{}:
			if liveMap, ok := live[i].(map[string]interface{}); ok {
				restoreEmptyObjects(value, liveMap)
			}
		case []interface{}:
			if liveArray, ok := live[i].([]interface{}); ok {
				restoreEmptyObjectsInArray(value, liveArray)
			}
		}
	}
}

// safeOsLoader is the os module Argo CD gives scripts: time() and date() only, nothing that reads
// files, runs programs or exits. date supports the strftime fields a timestamp needs, in UTC with a
// leading "!"; anything else is an error here, so that a script cannot depend on a field whose
// rendering Argo CD might not share.
func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), map[string]lua.LGFunction{
		"time": func(l *lua.LState) int {
			if l.GetTop() != 0 {
				l.RaiseError("argocd-lua: os.time with arguments is not supported by this harness")
			}
			l.Push(lua.LNumber(time.Now().Unix()))
			return 1
		},
		"date": osDate,
	}))
	return 1
}

func osDate(l *lua.LState) int {
	format := l.CheckString(1)
	t := time.Now()
	if len(format) > 0 && format[0] == '!' {
		t = t.UTC()
		format = format[1:]
	}
	fields := map[byte]string{'Y': "2006", 'm': "01", 'd': "02", 'H': "15", 'M': "04", 'S': "05", 'X': "15:04:05", 'F': "2006-01-02"}
	out := make([]byte, 0, len(format)+16)
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			out = append(out, format[i])
			continue
		}
		if i+1 >= len(format) {
			l.RaiseError("argocd-lua: os.date format ends with %%")
		}
		i++
		if format[i] == '%' {
			out = append(out, '%')
			continue
		}
		layout, ok := fields[format[i]]
		if !ok {
			l.RaiseError("argocd-lua: os.date field %%%c is not supported by this harness", format[i])
		}
		out = append(out, t.Format(layout)...)
	}
	l.Push(lua.LString(string(out)))
	return 1
}

// decodeValue turns decoded JSON into Lua values as Argo CD's util/lua does.
func decodeValue(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []interface{}:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]interface{}:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}
