"""Generate random but plausible templates and params (reproducible by seed) for differential runs against the
reference: python gen_random_inputs.py SEED COUNT OUT.json, then INPUTS=OUT.json python gen_reference.py."""
import json, random, sys
random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
names = ["a", "b", "c", "ids", "x", "d"]
vals = ["", "0", "1", "-5", "007", "1.5", "1e3", "abc", "a,b", "1,2,3", "2024-01-01", "2024-01-01 10:00:00", "2024-01-01 10:00:00.123",
        "true", "false", "'", "\\", "%", "a'b\"c", "é", " 1", "1, 2", "nan", "9999999999", "-1", "x.y", "null"]
fns = ["String", "Int32", "Int8", "UInt8", "Int64", "UInt64", "Int128", "UInt256", "Int", "Integer", "Float32", "Float64",
       "Date", "DateTime", "DateTime64", "Boolean", "column", "symbol", "table", "columns", "defined", "JSON", "split_to_array"]
arr_types = ["'Int32'", "'String'", "'Float64'", "'UInt8'", "'Date'", "'Boolean'", "'Int'", "'DateTime'", ""]
def lit():
    return random.choice(["'x'", "'1'", "5", "0", "''", "None", "True", "1.5", "'2024-01-01'", "'a,b'", "-3"])
def typed():
    f = random.choice(fns + ["Array"] * 3)
    n = random.choice(names)
    if f == "Array":
        t = random.choice(arr_types)
        args = n + (", " + t if t else "")
        if random.random() < 0.3: args += ", " + lit()
        if random.random() < 0.3: args += ", defined=False"
        return f"Array({args})"
    args = n
    r = random.random()
    if r < 0.3: args += ", " + lit()
    elif r < 0.45: args += ", defined=False"
    elif r < 0.55: args += ", default=" + lit()
    return f"{f}({args})"
def expr():
    r = random.random()
    if r < 0.6: return typed()
    if r < 0.7: return random.choice(names)
    if r < 0.8: return f"sql_and({random.choice(names)}={typed()}, {random.choice(names)}__{random.choice(['in','gt','lte','not_in'])}={typed()})"
    if r < 0.9: return f"{typed()} + {typed()}"
    return random.choice(["[1, 'a']", "{'k': 1}", "'s' * 2", "1 - 2", "not " + random.choice(names)])
def cond():
    r = random.random()
    n = random.choice(names)
    if r < 0.4: return f"defined({n})"
    if r < 0.55: return f"not defined({n})"
    if r < 0.7: return f"{n} == {lit()}"
    if r < 0.8: return f"{typed()}"
    if r < 0.85: return f"defined({n}) and {n} != ''"
    if r < 0.88: return f"len(split_to_array({n}, '')) > 1"
    if r < 0.91: return f"Int({n}, 0) >= {random.choice(['0', '2', '-1'])}"
    if r < 0.94: return f"{n}.startswith('a')"
    if r < 0.97: return f"{n} is None or {n} == '1'"
    return f"{n} in ('a', 'b')"
def block(depth=0):
    parts = []
    for _ in range(random.randint(1, 4)):
        r = random.random()
        if r < 0.35: parts.append(random.choice(["SELECT ", " AND ", "\n", " x = ", ", ", " FROM t "]))
        elif r < 0.7: parts.append("{{" + expr() + "}}")
        elif r < 0.85 and depth < 3:
            s = "{% if " + cond() + " %}" + block(depth + 1)
            if random.random() < 0.3: s += "{% elif " + cond() + " %}" + block(depth + 1)
            if random.random() < 0.5: s += "{% else %}" + block(depth + 1)
            parts.append(s + "{% end %}")
        elif r < 0.93 and depth < 3:
            v = random.choice(["v", "w"])
            src = random.choice([f"split_to_array({random.choice(names)}, '1,2')", "[1, 2]", f"JSON({random.choice(names)}, '[1]')", f"range(2)", random.choice(names)])
            parts.append("{% for " + v + " in " + src + " %}{{" + random.choice([v, f"String({v})" , "1"]) + "}}{% end %}")
        elif r < 0.96:
            parts.append("{% set " + random.choice(["s", "t"]) + " = " + expr() + " %}")
        elif r < 0.98:
            parts.append("{% try %}{{" + expr() + "}}{% except " + random.choice(["", "ValueError", "Exception as e", "KeyError"]) + " %}E{% end %}")
        else:
            m = random.choice(names)
            parts.append("{% set k = 0 %}{% while k < 2 %}{{k}}{% set k = k + 1 %}{% end %}{{" + random.choice([f"','.join(split_to_array({m}, 'p,q'))", f"{m}.replace('a', 'b') if {m} else 'z'", f"max(1, 2)", f"len({m}) if {m} else 0"]) + "}}")
    return "".join(parts)
cases = []
for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 2000):
    params = {}
    for n in names:
        r = random.random()
        if r < 0.45: params[n] = random.choice(vals)
        elif r < 0.5: params[n] = [random.choice(vals), random.choice(vals)]
    case = {"id": f"gen_{i}", "template": block(), "params": params, "test_mode": random.random() < 0.2}
    if random.random() < 0.15:
        case["json_params"] = {random.choice(names): random.choice([3, -1, 2.5, True, None, [1, 2], ["a", "b"], {"k": "v"}, "s", 0])}
    cases.append(case)
json.dump(cases, open(sys.argv[3] if len(sys.argv) > 3 else "/tmp/diff_inputs.json", "w"), indent=0)
