from common import *
import sys
rng=np.random.default_rng(0)
def load_ext(name):
    X=np.fromfile(f'{name}_q.bin',dtype=np.float32).reshape(-1,13,384)[:,12,:]
    lab=[l.strip() for l in open(f'{name}.lab')]
    u=sorted(set(lab)); m={c:i for i,c in enumerate(u)}
    return X, np.array([m[c] for c in lab])
def train_adapter(X, y, out_dim=384, episodes=400, N=50, K=10, s=10., lam=1e-2, lr=2e-3, seed=0):
    rng=np.random.default_rng(seed)
    X=nrm(X-X.mean(0))
    D=X.shape[1]
    W=np.eye(out_dim,D)
    mW=np.zeros_like(W); vW=np.zeros_like(W)
    classes=np.unique(y); idx={c:np.where(y==c)[0] for c in classes}
    for ep in range(1,episodes+1):
        cs=rng.choice(classes,N,replace=False)
        sup=[];qry=[];yq=[]
        for j,c in enumerate(cs):
            p=rng.permutation(idx[c]); sup.append(p[:K]); q=p[K:K+10]; qry.append(q); yq+= [j]*len(q)
        sup=np.concatenate(sup); qry=np.concatenate(qry); yq=np.array(yq)
        Xs=X[sup]; Xq=X[qry]
        Zs=Xs@W.T; ns=np.linalg.norm(Zs,axis=1,keepdims=True); Us=Zs/ns
        Zq=Xq@W.T; nq=np.linalg.norm(Zq,axis=1,keepdims=True); Uq=Zq/nq
        P=Us.reshape(N,K,-1).mean(1); npn=np.linalg.norm(P,axis=1,keepdims=True); Pn=P/npn
        Lg=s*Uq@Pn.T
        Pr=softmax(Lg); G=Pr.copy(); G[np.arange(len(yq)),yq]-=1; G/=len(yq)
        loss=-np.log(Pr[np.arange(len(yq)),yq]+1e-9).mean()
        dUq=s*G@Pn; dPn=s*G.T@Uq
        dP=(dPn - Pn*(Pn*dPn).sum(1,keepdims=True))/npn
        dUs=np.repeat(dP/K,K,axis=0)
        dZs=(dUs - Us*(Us*dUs).sum(1,keepdims=True))/ns
        dZq=(dUq - Uq*(Uq*dUq).sum(1,keepdims=True))/nq
        gW=dZq.T@Xq + dZs.T@Xs + 2*lam*(W-np.eye(out_dim,D))
        mW=0.9*mW+0.1*gW; vW=0.999*vW+0.001*gW*gW
        W-=lr*(mW/(1-0.9**ep))/(np.sqrt(vW/(1-0.999**ep))+1e-8)
        if ep%100==0: print(' ep',ep,'loss',round(loss,3),file=sys.stderr)
    return W
def eval_b77(W):
    mean=exq[:,12,:].mean(0)
    E=nrm(nrm(exq[:,12,:]-mean)@W.T); Ed=nrm(nrm(devq[:,12,:]-mean)@W.T)
    # re-centre after transform
    m2=E.mean(0); E2=nrm(E-m2); Ed2=nrm(Ed-m2)
    P=np.zeros((77,E.shape[1]))
    for c in range(77): P[c]=E2[ytr==c].mean(0)
    P=nrm(P)
    Wh,b=head_train(E2,ytr,77)
    return ((Ed2@P.T).argmax(1)==ydev).mean()*100, ((Ed2@Wh.T+b).argmax(1)==ydev).mean()*100
if __name__=='__main__':
    X,y=load_ext('clinc')
    print('identity',eval_b77(np.eye(384)))
    for lam in [1e-1,1e-2,1e-3]:
        for eps in [300,1000]:
            W=train_adapter(X,y,lam=lam,episodes=eps)
            print('lam',lam,'eps',eps,eval_b77(W), flush=True)
            np.save(f'W_{lam}_{eps}.npy',W)
