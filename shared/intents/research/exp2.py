from common import *
C=77
def std_feats(X, layers, stats, w):
    parts=[]
    for (mu,sd),l,wi in zip(stats,layers,w):
        v=(X[:,l,:]-mu)/sd
        v=nrm(v)*wi
        parts.append(v)
    return np.concatenate(parts,axis=1)
for l in [12,11,10,9,8,7,6,4]:
    stats=[(exq[:,l,:].mean(0), exq[:,l,:].std(0)+1e-3)]
    Xtr=std_feats(exq,[l],stats,[1]); Xd=std_feats(devq,[l],stats,[1])
    P=np.zeros((C,Xtr.shape[1]))
    for c in range(C): P[c]=Xtr[ytr==c].mean(0)
    P=nrm(P)
    W,b=head_train(Xtr,ytr,C)
    print(l,'std', f'proto {((Xd@P.T).argmax(1)==ydev).mean()*100:.2f} head {((Xd@W.T+b).argmax(1)==ydev).mean()*100:.2f}')
for layers,w in [([12,11],[1,.5]),([12,10],[1,.5]),([12,9],[1,.5]),([12,8],[1,.5]),([12,6],[1,.5]),([12,11,10],[1,.5,.5]),([12,8,4],[1,.5,.5])]:
    stats=[(exq[:,l,:].mean(0), exq[:,l,:].std(0)+1e-3) for l in layers]
    Xtr=std_feats(exq,layers,stats,w); Xd=std_feats(devq,layers,stats,w)
    Xtr=nrm(Xtr); Xd=nrm(Xd)
    P=np.zeros((C,Xtr.shape[1]))
    for c in range(C): P[c]=Xtr[ytr==c].mean(0)
    P=nrm(P)
    W,b=head_train(Xtr,ytr,C)
    print(layers,w, f'proto {((Xd@P.T).argmax(1)==ydev).mean()*100:.2f} head {((Xd@W.T+b).argmax(1)==ydev).mean()*100:.2f}')
