from common import *
from sklearn.linear_model import LogisticRegression
import warnings; warnings.filterwarnings('ignore')
C=77
S=np.load('li_0.npy')
def cls_k(S,k):
    cls=np.zeros((S.shape[0],C))
    for c in range(C):
        s=np.sort(S[:,ytr==c],1)[:,::-1][:,:k]; cls[:,c]=s.mean(1)
    return cls
LI=cls_k(S,3)
Pt=np.load('tfidf_probs.npy')
mean=exq[:,12,:].mean(0)
E=nrm(exq[:,12,:]-mean); Ed=nrm(devq[:,12,:]-mean)
W,b=head_train(E,ytr,C); Ph=softmax(Ed@W.T+b)
le=LogisticRegression(C=30,max_iter=3000).fit(E,ytr); Pe=le.predict_proba(Ed)
# kNN sentence
Ssent=Ed@E.T; KN=cls_k(Ssent,3)
def ev(P): return (P.argmax(1)==ydev).mean()*100
print('head',ev(Ph),'lr',ev(Pe),'li',ev(LI),'knn',ev(KN))
for a in [0.5,1,2,4]:
  for t in [0, 0.1,0.2,0.3]:
    print(a,t, 'head+li', f'{ev(Ph + a*LI + t*Pt):.2f}', 'lr+li', f'{ev(Pe + a*LI + t*Pt):.2f}', 'head+li+knn', f'{ev(0.3*Ph + LI + KN + t*Pt):.2f}')
