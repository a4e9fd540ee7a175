import numpy as np
H=384
def load_tok(name, skip=3):
    raw=np.fromfile(f'/work/b77x/{name}.bin',dtype=np.uint8)
    out=[]; p=0
    while p<len(raw):
        T=int(np.frombuffer(raw[p:p+4],dtype=np.int32)[0]); p+=4
        a=np.frombuffer(raw[p:p+4*T*H],dtype=np.float32).reshape(T,H); p+=4*T*H
        out.append(a[skip:T-1].copy() if T-1>skip else a[1:T].copy())
    return out
