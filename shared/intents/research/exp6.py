from common import *
from tok import load_tok
import sys
C=77
ex=load_tok('ex_tok'); dv=load_tok('dev_tok')
allt=np.concatenate(ex); mu=allt.mean(0)
def prep(lst,center):
    return [nrm(a-mu) if center else nrm(a) for a in lst]
for center in [False,True]:
    E=prep(ex,center); D=prep(dv,center)
    EA=np.concatenate(E); owner=np.concatenate([[i]*len(a) for i,a in enumerate(E)])
    nex=len(E)
    S=np.zeros((len(D),nex))
    for qi,q in enumerate(D):
        sim=q@EA.T  # (tq, tokens)
        # max per example per query token
        m=np.full((q.shape[0],nex),-9.)
        np.maximum.at(m.T, owner, sim.T) if False else None
        for e in range(nex): pass
        # faster: use reduceat since owner contiguous
        starts=np.r_[0,np.cumsum([len(a) for a in E])[:-1]]
        m=np.maximum.reduceat(sim,starts,axis=1)
        S[qi]=m.mean(0)
    np.save(f'li_{int(center)}.npy',S)
    for k in [1,2,3]:
        cls=np.zeros((len(D),C))
        for c in range(C):
            s=np.sort(S[:,ytr==c],1)[:,::-1][:,:k]; cls[:,c]=s.mean(1)
        print('center',center,'k',k,f'{(cls.argmax(1)==ydev).mean()*100:.2f}')
