"""Acceptance test: the real, unmodified Azure dynamic-sessions client packages against sandpool.

Usage: python clients.py PYTHON_POOL_URL SHELL_POOL_URL API_KEY
Exits non-zero with a message on the first failed check; prints one line per check.
"""
import io
import json
import os
import sys
import tempfile
import uuid

PY_EP, SHELL_EP, KEY = sys.argv[1], sys.argv[2], sys.argv[3]
checks = 0


def check(cond, what, detail=""):
    global checks
    if not cond:
        print(f"FAIL {what}: {detail}", flush=True)
        sys.exit(1)
    checks += 1
    print(f"ok   {what}", flush=True)


def langchain_python():
    from langchain_azure_dynamic_sessions import SessionsPythonREPLTool

    sid = "lc-" + uuid.uuid4().hex
    tool = SessionsPythonREPLTool(pool_management_endpoint=PY_EP, access_token_provider=lambda: KEY, session_id=sid)
    out = json.loads(tool.invoke("print('hi'); 6*7"))
    check(out["result"] == 42 and out["stdout"] == "hi\n", "langchain execute", out)
    out = json.loads(tool.invoke("x = 5"))
    out = json.loads(tool.invoke("x * 2"))
    check(out["result"] == 10, "langchain state persists", out)
    out = json.loads(tool.invoke("1/0"))
    check("ZeroDivisionError" in out["stderr"], "langchain exception in stderr", out)
    meta = tool.upload_file(data=io.BytesIO(b"abc"), remote_file_path="a.txt")
    check(meta.filename == "a.txt" and meta.size_in_bytes == 3, "langchain upload", meta)
    names = [f.filename for f in tool.list_files()]
    check("a.txt" in names, "langchain list", names)
    data = tool.download_file(remote_file_path="a.txt").read()
    check(data == b"abc", "langchain download", data)
    out = json.loads(tool.invoke("open('/mnt/data/a.txt').read()"))
    check(out["result"] == "'abc'", "langchain file visible to code", out)
    result = tool.execute("import matplotlib.pyplot as plt\nplt.plot([1,2,3])\nplt.show()")
    res = result.get("result")
    check(isinstance(res, dict) and res.get("type") == "image" and res.get("format") == "png" and res.get("base64_data"),
          "langchain matplotlib image", str(result)[:200])
    tool.close()


def langchain_bash():
    from langchain_azure_dynamic_sessions import SessionsBashTool

    bash = SessionsBashTool(pool_management_endpoint=SHELL_EP, access_token_provider=lambda: KEY)
    out = bash.invoke("echo hello; echo oops >&2; exit 3")
    check("hello" in str(out) and "3" in str(out), "langchain bash", out)


def llama_index():
    from llama_index.tools.azure_code_interpreter import AzureCodeInterpreterToolSpec

    spec = AzureCodeInterpreterToolSpec(pool_management_endpoint=PY_EP, session_id="li-" + uuid.uuid4().hex)
    spec.access_token_provider = lambda: KEY
    out = spec.code_interpreter("print('hi')")
    check(out["properties"]["stdout"] == "hi\n" and out["properties"]["status"] == "Success", "llama-index execute", out)
    p = os.path.join(tempfile.mkdtemp(), "d.csv")
    with open(p, "w") as f:
        f.write("a,b\n1,2\n")
    up = spec.upload_file(local_file_path=p)
    check(up and up[0].filename == "d.csv", "llama-index upload", up)
    names = [f.filename for f in spec.list_files()]
    check("d.csv" in names, "llama-index list", names)
    data = spec.download_file_to_local("d.csv").read()
    check(data == b"a,b\n1,2\n", "llama-index download", data)
    out = spec.code_interpreter("import pandas as pd\nint(pd.read_csv('d.csv')['b'].sum())")
    check(out["properties"]["result"] == 2, "llama-index pandas on uploaded file", out)


langchain_python()
langchain_bash()
llama_index()
print(f"{checks} passed, 0 failed")
