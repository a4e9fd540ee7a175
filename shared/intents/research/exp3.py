from common import *
from sklearn.linear_model import LogisticRegression
import warnings; warnings.filterwarnings('ignore')
C=77
def prep(layers, w=None):
    w=w or [1]*len(layers)
    mean=[exq[:,l,:].mean(0) for l in layers]
    f=lambda X: nrm(np.concatenate([nrm(X[:,l,:]-m)*wi for l,m,wi in zip(layers,mean,w)],1))
    return f(exq), f(devq)
for layers,w in [([12],None),([12,11],[1,.5]),([12,11,10,9],[1,.5,.3,.3]),([12,8],[1,.4])]:
    Xtr,Xd=prep(layers,w)
    for Cr in [1,10,30,100,1000]:
        m=LogisticRegression(C=Cr,max_iter=3000).fit(Xtr,ytr)
        print(layers,w,Cr, f'{(m.predict(Xd)==ydev).mean()*100:.2f}')
