from adapter import *
X=np.fromfile('clinc_q.bin',dtype=np.float32); n=X.size//(13*384); X=X[:n*13*384].reshape(n,13,384)[:,12,:]
lab=[l.strip() for l in open('clinc.lab')][:n]; n=(n//30)*30; X=X[:n]; lab=lab[:n]
u=sorted(set(lab)); y=np.array([u.index(c) for c in lab]); print('rows',n,'classes',len(u))
print('identity',eval_b77(np.eye(384)))
for lam,eps in [(1e-3,400)]:
    W=train_adapter(X,y,lam=lam,episodes=eps,N=min(50,len(u)))
    print('lam',lam,'eps',eps,eval_b77(W),flush=True)
