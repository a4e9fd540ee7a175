from common import *
from sklearn.linear_model import LogisticRegression
import warnings; warnings.filterwarnings('ignore')
C=77
def ev(P): return (P.argmax(1)==ydev).mean()*100
mean=exq[:,12,:].mean(0)
E=nrm(exq[:,12,:]-mean); Ed=nrm(devq[:,12,:]-mean); Ep=nrm(exp_[:,12,:]-mean)
W,b=head_train(E,ytr,C); Ph=softmax(Ed@W.T+b)
o=np.argsort(-Ph,1)
for k in [1,2,3,5,10]: print('top',k,(o[:,:k]==ydev[:,None]).any(1).mean()*100)
# passage view
X2=np.concatenate([E,Ep]); y2=np.concatenate([ytr,ytr])
W,b=head_train(X2,y2,C); print('head q+p', ev(Ed@W.T+b))
Ep2=nrm(exp_[:,12,:]-exp_[:,12,:].mean(0))
X2=np.concatenate([E,Ep2]); W,b=head_train(X2,y2,C); print('head q+p(own centre)', ev(Ed@W.T+b))
import os
if os.path.exists('aug_q.bin') and os.path.getsize('aug_q.bin')==3080*13*384*4:
    A=np.fromfile('aug_q.bin',dtype=np.float32).reshape(-1,13,384)[:,12,:]
    ya=np.repeat(ytr,4)
    An=nrm(A-mean)
    for sel,name in [([0,1,2,3],'all4'),([0],'del15'),([1],'stop'),([2],'swap'),([3],'del25'),([0,3],'del')]:
        idx=np.array([i*4+s for i in range(770) for s in sel])
        X2=np.concatenate([E,An[idx]]); y2=np.concatenate([ytr,ya[idx]])
        W,b=head_train(X2,y2,C); 
        le=LogisticRegression(C=30,max_iter=3000).fit(X2,y2)
        print('aug',name, 'head',f'{ev(Ed@W.T+b):.2f}','lr',f'{ev(le.predict_proba(Ed)):.2f}')
