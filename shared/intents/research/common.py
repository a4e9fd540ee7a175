import numpy as np
L=13; H=384
def load(name):
    a=np.fromfile(f'/work/b77x/{name}.bin',dtype=np.float32)
    return a.reshape(-1,L,H)
def labels(name):
    return [l.strip() for l in open(f'/work/b77x/{name}.lab')]
cats=[l.strip().replace(' ','_') for l in open('/work/b77x/desc.txt')]
ci={c:i for i,c in enumerate(cats)}
exq=load('ex_q'); exp_=load('ex_p'); devq=load('dev_q'); dq=load('desc_q'); dp=load('desc_p')
ytr=np.array([ci[c] for c in labels('ex')]); ydev=np.array([ci[c] for c in labels('dev')])
def nrm(x): return x/np.linalg.norm(x,axis=-1,keepdims=True)
def feats(X, layers, mean=None):
    parts=[]
    for i,l in enumerate(layers):
        v=X[:,l,:]
        if mean is not None: v=nrm(v-mean[i])
        parts.append(v)
    return np.concatenate(parts,axis=1)/np.sqrt(len(layers))
def softmax(z):
    z=z-z.max(1,keepdims=True); e=np.exp(z); return e/e.sum(1,keepdims=True)
def head_train(X,y,C,scale=10.,epochs=300,lr=10.,l2=0.):
    W=np.zeros((C,X.shape[1]))
    for c in range(C): W[c]=X[y==c].sum(0)
    W=W/np.linalg.norm(W,axis=1,keepdims=True)*scale; W0=W.copy(); b=np.zeros(C)
    Y=np.eye(C)[y]; n=len(y)
    for _ in range(epochs):
        P=softmax(X@W.T+b); E=P-Y
        W-=lr*(E.T@X/n + l2*(W-W0)); b-=lr/scale*E.sum(0)/n
    return W,b
